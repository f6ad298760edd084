"""Translate a Scipion workflow template into tomoforge workflow nodes, with a report of what did not map.

Each Scipion protocol class maps to one tomoforge step (or to nothing, with the reason). Parameters are
translated by an explicit function per class; pointers ``"ID.outputName"`` become node inputs when the
source protocol was mapped. Template placeholders ``~label|default|type|name~`` take their default and are
listed as user inputs; ``%(SCIPION_TESTS)s`` becomes ``$SCIPION_TESTS``.

Translators of protocols whose step exists emit only that step's parameters, converted to its units (IMOD
nm -> Å, Scipion frame numbers 1-based -> 0-based...); a Scipion value with no equivalent is not read, so it
is listed in the node's ``dropped_params``. A translator may add ``_step`` (another step), ``_note`` (a line for
the report) and ``_keep_none`` (keys whose None is meant, e.g. ``align``'s fiducial-less mode).
Parameter names of steps that do not exist yet in the registry follow the step's issue and may change.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tomoforge.io.scipion import ScipionProtocol, read_workflow_template

_PLACEHOLDER = re.compile(r"^~([^|~]*)\|([^|~]*)\|([^|~]*)\|([^|~]*)~$")
_POINTER = re.compile(r"^(\d+)\.(\w*)$")


class MappedNode(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    step: str
    params: dict[str, object]
    inputs: dict[str, str] = Field(default_factory=dict)
    source_class: str
    source_id: str
    dropped_params: list[str] = Field(default_factory=list, description="Scipion parameters not translated")


class Unmapped(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source_class: str
    source_id: str
    label: str
    reason: str


class WorkflowImport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str
    nodes: list[MappedNode]
    unmapped: list[Unmapped]
    user_inputs: dict[str, str] = Field(default_factory=dict, description="placeholder name -> default")
    notes: list[str] = Field(default_factory=list)

    def report(self) -> str:
        out = [f"{len(self.nodes)} protocols mapped, {len(self.unmapped)} not mapped"]
        out += [f"  {n.source_class} ({n.source_id}) -> {n.step} [{n.id}]" for n in self.nodes]
        out += [f"  NOT MAPPED {u.source_class} ({u.source_id}, '{u.label}'): {u.reason}" for u in self.unmapped]
        out += [f"  input '{k}': {v}" for k, v in self.user_inputs.items()]
        out += [f"  note: {n}" for n in self.notes]
        return "\n".join(out)


# ------------------------------------------------------------------------------------- helpers

def _val(v, user_inputs: dict[str, str]):
    if isinstance(v, str):
        m = _PLACEHOLDER.match(v.strip())
        if m:
            label, default, _typ, name = m.groups()
            v = default.replace("%(SCIPION_TESTS)s", "$SCIPION_TESTS")
            user_inputs[name or label] = v
        v = v.replace("%(SCIPION_TESTS)s", "$SCIPION_TESTS")
    return v


def _sym(s) -> str:
    s = str(s or "C1").split()[0]
    return s[0].upper() + s[1:] if s else "C1"


def _yes(v) -> bool:
    """Scipion yes/no: a BooleanParam, or in older plugins an EnumParam ['Yes', 'No'] where 0 means yes."""
    if isinstance(v, bool) or v is None:
        return bool(v)
    if isinstance(v, (int, float)) or str(v).strip().isdigit():
        return int(v) == 0
    return str(v).strip().lower() in ("true", "yes")


T = Callable[[dict], dict]


class _Tracked(dict):
    """A dict that remembers which keys a translator read, so the report can list the rest."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.read: set[str] = set()

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)


def _import_movies(p: dict) -> dict:
    pattern = str(p.get("filesPattern") or "*.mdoc")
    folder = str(p.get("filesPath") or ".")
    out: dict = {"mdoc": str(Path(folder) / pattern)} if pattern.endswith(".mdoc") else {
        "folder": folder, "pattern": pattern}
    for src, dst in (("voltage", "voltage_kv"), ("sphericalAberration", "cs_mm"),
                     ("amplitudeContrast", "amplitude_contrast"), ("magnification", "magnification"),
                     ("samplingRate", "pixel_size_a"), ("tiltAxisAngle", "tilt_axis_deg")):
        if p.get(src) is not None:
            out[dst] = p[src]
    # Scipion's tilt-series imports call the dose of one tilt image 'dosePerFrame' (3 e/Å² for EMPIAR-10164)
    if p.get("dosePerFrame"):
        out["dose_per_tilt_e_per_a2"] = p["dosePerFrame"]
    if p.get("doseInitial"):
        out["initial_dose_e_per_a2"] = p["doseInitial"]
    if p.get("gainFile"):
        out["gain"] = p["gainFile"]
    if p.get("darkFile"):
        out["dark"] = p["darkFile"]
    return out


def _import_ts(p: dict) -> dict:
    return {k: v for k, v in _import_movies(p).items() if k not in ("gain", "dark")}


def _motion(p: dict) -> dict:
    out = {"first_frame": max(0, int(p.get("alignFrame0", 1)) - 1),
           "bin_factor": float(p.get("binFactor", 1.0) or 1.0),
           "split_even_odd": bool(p.get("splitEvenOdd", False))}
    n = int(p.get("alignFrameN", 0) or 0)
    if n > 0:
        out["last_frame"] = n - 1
    # MotionCor2 -SumRange is 1-based, 0 = the last frame
    if int(p.get("sumFrame0", 0) or 0) > 1:
        out["sum_first_frame"] = int(p["sumFrame0"]) - 1
    if int(p.get("sumFrameN", 0) or 0) > 0:
        out["sum_last_frame"] = int(p["sumFrameN"]) - 1
    if p.get("patchX") and p.get("patchY"):
        out["patches_x"], out["patches_y"] = int(p["patchX"]), int(p["patchY"])
    if p.get("doApplyDoseFilter"):
        out["dose_weighting"] = True
    # gain orientation and EER grouping belong to import-movies in tomoforge; they stay in the report
    return out


def _warp_motion(p: dict) -> dict:
    # Warp's x/y is the motion grid: 1 x 1 is global motion only (tomoforge: 0 patches)
    nx, ny = int(p.get("x", 1) or 1), int(p.get("y", 1) or 1)
    out: dict = {"bin_factor": float(p.get("binFactor", 1.0) or 1.0), "patches_x": nx if nx > 1 else 0,
                 "patches_y": ny if ny > 1 else 0}
    if p.get("bfactor") is not None:
        out["b_factor_a2"] = abs(float(p["bfactor"]))
    return out


def _xray(p: dict) -> dict:
    # ccderaser PeakCriterion -> peak_sd; MaximumRadius bounds how far a peak grows
    out = {"peak_sd": p.get("peakCriterion", 8.0), "grow_radius": int(round(float(p.get("maximumRadius", 2.0))))}
    if p.get("processOddEven") is not None:
        out["even_odd"] = bool(p["processOddEven"])
    return out


def _dose(p: dict) -> dict:
    # tomoforge takes the doses from the acquisition (mdoc/import), as Scipion's inputDoseType 0 does;
    # a fixed per-image dose (inputDoseType 1) is left in the report's dropped parameters.
    out = {"mode": "accumulated"}
    if p.get("processOddEven") is not None:
        out["even_odd"] = bool(p["processOddEven"])
    return out


def _xcorr(p: dict) -> dict:
    # tiltxcorr filters are in cycles/pixel of the correlated images, as align-coarse's lowpass/highpass;
    # its binning, trimming and fall-offs have no equivalent (align-coarse bins to working_size_px itself)
    out: dict = {"cumulative": _yes(p.get("cumulativeCorr", False))}
    if 0 < float(p.get("filterRadius2") or 0) <= 0.5:
        out["lowpass"] = float(p["filterRadius2"])
    if 0 <= float(p.get("filterSigma1") or 0) < 0.5 and p.get("filterSigma1") is not None:
        out["highpass"] = float(p["filterSigma1"])
    if p.get("tiltAxisAngle") not in (None, ""):
        out["tilt_axis_deg"] = float(p["tiltAxisAngle"])   # IMOD RotationAngle: CCW from +Y, as tomoforge
    return out


def _fid_model(p: dict) -> dict:
    if int(p.get("typeOfModel", 0) or 0) == 1:     # patch tracking; its sizes are not in working pixels
        return {"_step": "align-patches"}
    out: dict = {"bead_diameter_nm": p.get("fiducialDiameter"), "two_surfaces": _yes(p.get("twoSurfaces", False))}
    if p.get("numberFiducial"):
        out["target_beads"] = max(4, int(p["numberFiducial"]))
    return out


# tiltalign solution types as Scipion numbers them
_ROTATION = {0: "one", 1: "one", 2: "group", 3: "view"}        # 'no rotation' has no tomoforge equivalent
_MAGNIFICATION = {0: "fixed", 1: "group", 2: "view"}
_TILT = {0: "fixed", 1: "group", 2: "view"}


def _fid_align(p: dict) -> dict:
    rot, mag, tilt = (int(p.get(k, d) or 0) for k, d in (("rotationSolutionType", 3),
                                                             ("magnificationSolutionType", 1),
                                                             ("tiltAngleSolutionType", 1)))
    out: dict = {"rotation": _ROTATION.get(rot, "one"), "magnification": _MAGNIFICATION.get(mag, "fixed"),
                 "tilt": _TILT.get(tilt, "fixed")}
    group = [p.get(k) for k, on in (("groupTiltAngleSize", tilt == 1), ("groupRotationSize", rot == 2),
                                     ("groupMagnificationSize", mag == 1)) if on]
    if group and group[0]:
        out["group_size"] = max(2, int(group[0]))          # tomoforge has one group size for all
    notes = []
    if rot == 0:
        notes.append("'no rotation' solved as one rotation")
    if int(p.get("distortionSolutionType", 0) or 0):
        notes.append("distortion (stretch/skew) is not solved")
    if "eraseGoldBeads" in p and _yes(p.get("eraseGoldBeads")):
        notes.append("erase the beads with an erase-fiducials node (mode project)")
    if notes:
        out["_note"] = "; ".join(notes)
    return out


def _brt(p: dict) -> dict:
    # batchruntomo runs the whole chain (coarse, beads or patches, solve): the composite 'align'
    if int(p.get("alignMode", 0) or 0) == 1:
        return {"_step": "align", "bead_diameter_nm": None, "_keep_none": ["bead_diameter_nm"]}
    return {"_step": "align", "bead_diameter_nm": p.get("fidSize")}


def _aretomo(p: dict) -> dict:
    # AreTomo: fiducial-less global (+ local with patches) alignment; reconstruction is a separate node here
    local = int(p.get("patchX") or 0) > 1 and int(p.get("patchY") or 0) > 1
    out: dict = {"_step": "align", "bead_diameter_nm": None, "_keep_none": ["bead_diameter_nm"]} if local else \
        {"_step": "align-coarse"}
    if p.get("tiltAxisAngle"):                     # 0: take the axis from the tilt series (as tomoforge)
        out["tilt_axis_deg"] = float(p["tiltAxisAngle"])   # AreTomo's axis is CCW from +Y, as tomoforge
    if p.get("makeTomo"):
        out["_note"] = "AreTomo's reconstruction is not part of this node: add a reconstruct node"
    return out


def _ctffind(p: dict) -> dict:
    # CTFFIND: resolutions and defocus in Å, phase shifts in degrees (tomoforge's units)
    out: dict = {"box_size": int(p.get("windowSize", 512) or 512), "resolution_min_a": p.get("lowRes"),
                 "resolution_max_a": p.get("highRes"), "defocus_min_a": p.get("minDefocus"),
                 "defocus_max_a": p.get("maxDefocus"), "defocus_step_a": p.get("stepDefocus"),
                 "fit_phase_shift": bool(p.get("findPhaseShift", False))}
    if out["fit_phase_shift"]:
        out.update(phase_shift_min_deg=p.get("minPhaseShift"), phase_shift_max_deg=p.get("maxPhaseShift"),
                   phase_shift_step_deg=p.get("stepPhaseShift"))
    return out


def _ctf_correct(p: dict) -> dict:
    # ctfphaseflip DefocusTol is in nm
    out: dict = {"mode": "flip"}
    if p.get("defocusTol"):
        out["defocus_tolerance_a"] = float(p["defocusTol"]) * 10.0
    if p.get("processOddEven") is not None:
        out["even_odd"] = bool(p["processOddEven"])
    return out


def _novactf(p: dict) -> dict:
    # novaCTF corrects slabs of the tomogram (3D); ctf-correct corrects strips of each view (2D). The defocus
    # step between slabs (nm) becomes the strips' defocus tolerance.
    out: dict = {"mode": "multiply" if int(p.get("correctionType", 0) or 0) == 1 else "flip",
                 "_note": "novaCTF's 3D correction is replaced by 2D strip correction before reconstruction"}
    if p.get("defocusStep"):
        out["defocus_tolerance_a"] = float(p["defocusStep"]) * 10.0
    return out


def _bin(p: dict) -> dict:
    out: dict = {"factor": float(p.get("binning", 1) or 1)}
    # newstack -FloatDensities 2 scales to the given mean and SD; tomoforge's zscore is mean 0, SD 1
    if int(p.get("floatDensities", 0) or 0) == 2 and (float(p.get("scaleMean", 0) or 0),
                                                      float(p.get("scaleSd", 1) or 1)) == (0.0, 1.0):
        out["normalisation"] = "zscore"
    if p.get("processOddEven") is not None:
        out["even_odd"] = bool(p["processOddEven"])
    return out


def _reconstruct_imod(p: dict) -> dict:
    # tilt: THICKNESS and SHIFT in pixels of the input tilt series, RADIAL in cycles/pixel when below 1
    out: dict = {"method": "wbp", "thickness_px": p.get("tomoThickness"), "px_units": "unbinned", "binning": 1,
                 "z_shift_px": p.get("tomoShiftZ")}
    n = int(p.get("fakeInteractionsSIRT", 0) or 0)
    if n > 0:
        out.update(method="sirt-like", sirt_iterations=n)
    if 0 < float(p.get("radialFirstParameter") or 0) <= 0.5:
        out["radial_cutoff"] = float(p["radialFirstParameter"])
        if 0 < float(p.get("radialSecondParameter") or 0) <= 0.5:
            out["radial_falloff"] = float(p["radialSecondParameter"])
    if p.get("processOddEven") is not None:
        out["half_tomograms"] = bool(p["processOddEven"])
    return out


def _reconstruct_tomo3d(p: dict) -> dict:
    # tomo3d: method 0 WBP, 1 SIRT; height (thickness) in pixels of the input tilt series
    out: dict = {"method": "sirt" if int(p.get("method", 0) or 0) == 1 else "wbp", "px_units": "unbinned",
                 "binning": 1}
    if int(p.get("height", 0) or 0) > 0:
        out["thickness_px"] = p["height"]
    if out["method"] == "sirt" and p.get("nIterations"):
        out["sirt_iterations"] = int(p["nIterations"])
    if p.get("doEvenOdd") is not None:
        out["half_tomograms"] = bool(p["doEvenOdd"])
    return out


def _reconstruct_relion(p: dict) -> dict:
    # relion_tomo_reconstruct_tomogram: --d (thickness) in unbinned pixels, --bin the output binning
    out: dict = {"binning": max(1, int(round(float(p.get("binFactor", 1) or 1)))), "px_units": "unbinned"}
    if float(p.get("thickness", -1) or -1) > 0:
        out["thickness_px"] = p["thickness"]
    return out


def _erase_fid(p: dict) -> dict:
    # fidder finds beads per view (a network's probability map): tomoforge's per-view detection
    out: dict = {"mode": "detect"}
    if p.get("doEvenOdd") is not None:
        out["even_odd"] = bool(p["doEvenOdd"])
    return out


def _picking(p: dict) -> dict:
    return {"box_size_px": p.get("boxSize")}


def _import_coords(p: dict) -> dict:
    return {"star": p.get("starFile"), "pixel_size_a": p.get("samplingRate"), "box_size_px": p.get("boxSize")}


def _extract(p: dict) -> dict:
    return {"box_size_px": p.get("boxSize"), "cropped_box_size_px": p.get("croppedBoxSize"),
            "binning": p.get("binningFactor") or p.get("downFactor"),
            "max_dose_e_per_a2": p.get("maxDose")}


def _average(p: dict) -> dict:
    return {"symmetry": _sym(p.get("symmetry") or p.get("symmetryGroup")), "box_size_px": p.get("boxSize"),
            "cropped_box_size_px": p.get("croppedBoxSize"), "binning": p.get("binningFactor")}


def _refine(p: dict) -> dict:
    return {"symmetry": _sym(p.get("symmetry")), "mask_diameter_a": p.get("maskDiameter"),
            "initial_low_pass_a": p.get("initialLowPassFilterA"), "angular_sampling_deg": p.get("angularSamplingDeg"),
            "offset_range_px": p.get("offsetSearchRangePix"), "ctf": bool(p.get("doCTF", True))}


def _classify(p: dict) -> dict:
    return {**_refine(p), "n_classes": p.get("numberOfClasses"), "iterations": p.get("nIterations")}


def _initial_model(p: dict) -> dict:
    return {"symmetry": _sym(p.get("symmetry")), "n_classes": p.get("numberOfClasses"),
            "mask_diameter_a": p.get("maskDiameter")}


def _postprocess(p: dict) -> dict:
    out = {"auto_b_factor": bool(p.get("estimateBFactor", True))}
    if p.get("useOwnBFactor"):
        out["b_factor_a2"] = p.get("userBFactor")
    return out


def _mask(p: dict) -> dict:
    return {"low_pass_a": p.get("initialLowPassFilterA"), "threshold": p.get("threshold"),
            "extend_px": p.get("extend"), "soft_edge_px": p.get("edge")}


def _denoise(p: dict) -> dict:
    return {"method": "gaussian" if int(p.get("method", 0) or 0) == 0 else "anisotropic",
            "sigma": p.get("SigmaGaussian"), "iterations": p.get("nIter")}


def _import_transform(p: dict) -> dict:
    return {"format": "imod-xf", "path": str(Path(str(p.get("filesPath") or ".")) / str(p.get("filesPattern") or "*.xf")),
            "binning": p.get("binningTM")}


def _import_ctf(p: dict) -> dict:
    return {"format": "imod-defocus",
            "path": str(Path(str(p.get("filesPath") or ".")) / str(p.get("filesPattern") or "*.defocus"))}


def _import_tomos(p: dict) -> dict:
    return {"path": str(Path(str(p.get("filesPath") or ".")) / str(p.get("filesPattern") or "*.mrc")),
            "pixel_size_a": p.get("samplingRate")}


def _import_mask(p: dict) -> dict:
    return {"path": p.get("maskPath"), "pixel_size_a": p.get("samplingRate")}


def _etomo(p: dict) -> dict:
    # interactive eTomo alignment: the composite 'align' (coarse, beads, solve) with the same bead size (nm)
    return {"bead_diameter_nm": p.get("markersDiameter"),
            "_note": "eTomo is interactive; 'align' runs the same chain automatically"}


# class -> (step, translator)
MAP: dict[str, tuple[str, T]] = {
    "ProtImportTsMovies": ("import-movies", _import_movies),
    "ProtImportMovies": ("import-movies", _import_movies),
    "ProtComposeTS": ("import-tilt-series", lambda p: {"mdoc": str(Path(str(p.get("filesPath") or ".")) /
                                                              str(p.get("mdocPattern") or "*.mdoc"))}),
    "ProtImportTs": ("import-tilt-series", _import_ts),
    "ProtTsMotionCorr": ("motion-correct", _motion),
    "ProtMotionCorr": ("motion-correct", _motion),
    "ProtWarpTSMotionCorr": ("motion-correct", _warp_motion),
    "ProtImodXraysEraser": ("xray-erase", _xray),
    "ProtAssignTransformationMatrixTiltSeries": ("assign-alignment", lambda p: {}),
    "ProtImodDoseFilter": ("dose-filter", _dose),
    "ProtImodXcorrPrealignment": ("align-coarse", _xcorr),
    "ProtImodFiducialModel": ("fiducial-model", _fid_model),
    "ProtImodFiducialAlignment": ("fiducial-align", _fid_align),
    "ProtImodBRT": ("align", _brt),
    "ProtImodEtomo": ("align", _etomo),
    "ProtAreTomoAlignRecon": ("align", _aretomo),
    "CistemProtTsCtffind": ("ctf-estimate", _ctffind),
    "ProtImodCtfCorrection": ("ctf-correct", _ctf_correct),
    "ProtNovaCtfTomoDefocus": ("ctf-correct", _novactf),
    "ProtImodTsNormalization": ("bin", _bin),
    "ProtImodTSNormalization": ("bin", _bin),
    "ProtImodTomoReconstruction": ("reconstruct", _reconstruct_imod),
    "ProtTomo3dReconstrucTomo": ("reconstruct", _reconstruct_tomo3d),
    "ProtRelionTomoReconstruct": ("reconstruct", _reconstruct_relion),
    "ProtFidderDetectAndEraseFiducials": ("erase-fiducials", _erase_fid),
    "ProtImodImportTransformationMatrix": ("import-alignment", _import_transform),
    "ProtImodImportSetOfCtfTomoSeries": ("import-ctf", _import_ctf),
    "ProtImportTomograms": ("import-tomograms", _import_tomos),
    "ProtImportCoordinates3DFromStar": ("import-picks", _import_coords),
    "ProtImportMask": ("import-mask", _import_mask),
    "SphireProtCRYOLOTomoPicking": ("pick", _picking),
    "EmanProtTomoExtraction": ("extract", _extract),
    "ProtRelion5ExtractSubtomos": ("extract", _extract),
    "ProtRelionMakePseudoSubtomograms": ("extract", _extract),
    "ProtRelionReconstructParticle": ("average", _average),
    "ProtRelion5ReconstructParticle": ("average", _average),
    "ProtRelionSubTomoReconstructAvg": ("average", _average),
    "ProtRelionDeNovoInitialModel": ("initial-model", _initial_model),
    "ProtRelionRefineSubtomograms": ("refine", _refine),
    "ProtRelion3DClassifySubtomograms": ("classify", _classify),
    "ProtRelionPostProcess": ("postprocess", _postprocess),
    "ProtRelionCreateMask3D": ("mask", _mask),
    "XmippProtCreateMask3D": ("mask", lambda p: {"threshold": p.get("threshold")}),
    "ProtJjsoftProtDenoiseTomogram": ("denoise", _denoise),
    "ProtTomo3dProtDenoiseTomogram": ("denoise", _denoise),
}

# classes with no tomoforge counterpart, and why
NOT_MAPPED: dict[str, str] = {
    "DynamoBoxing": "interactive manual picking in Dynamo's GUI; pick in the web viewer or import picks",
    "DynamoModelWorkflow": "Dynamo mesh/surface models have no tomoforge equivalent yet",
    "DynamoSubTomoMRA": "Dynamo multi-reference alignment: use 'refine'/'classify' (different algorithm)",
    "ProtSubSet": "Scipion set selection by ids: tomoforge selects with exclude-views/particle filters",
    "ProtRelionPrepareData": "RELION 4 data preparation: tomoforge passes geometry natively",
    "ProtRelionEditParticlesStar": "STAR editing (recentring) has no step; use the particle tools",
    "ProtExtractCoordsFromPSubtomos": "coordinates stay attached to particles in tomoforge",
    "XmippProtSubtomoMapBack": "map-back of averages into tomograms is not implemented",
    "XmippProtFSO": "directional FSC (FSO) is not implemented",
    "XmippProtMonoRes": "local resolution (MonoRes) is not implemented",
    "XmippProtMonoTomo": "local resolution of tomograms (MonoTomo) is not implemented",
    "XmippProtLocSharp": "local sharpening is not implemented",
}


# classes that only pass data along: pointers to them resolve to their source (the named parameter)
PASS_THROUGH: dict[str, str] = {
    "ProtSubSet": "inputFullSet",
    "ProtExtractCoordsFromPSubtomos": "inReParticles",
}

_IGNORED = {"runName", "runMode", "hostName", "numberOfThreads", "numberOfMpi", "gpuList", "useGpu", "binThreads",
            "streamingSleepOnWait", "streamingBatchSize", "gpusToUse", "doGpu"}


def _invalid_params(step: str, params: dict) -> list[str]:
    """Keys of ``params`` the registered step refuses (a Scipion value out of its range)."""
    from pydantic import ValidationError

    from tomoforge.steps.registry import STEPS

    cls = STEPS.get(step)
    if cls is None:
        return []
    try:
        cls.Params.model_validate(params)
    except ValidationError as err:
        return sorted({str(e["loc"][0]) for e in err.errors() if e["loc"] and str(e["loc"][0]) in params})
    return []


def import_workflow(path: str | Path) -> WorkflowImport:
    """Read a Scipion template and translate it. Never fails on unknown classes: they are reported."""
    desc, prots = read_workflow_template(path)
    return translate(desc, prots)


def translate(description: str, prots: list[ScipionProtocol]) -> WorkflowImport:
    user_inputs: dict[str, str] = {}
    id_to_node: dict[str, str] = {}
    nodes: list[MappedNode] = []
    unmapped: list[Unmapped] = []
    notes: list[str] = []
    # node ids first, so pointers to protocols listed later (streaming templates) resolve too
    for pr in prots:
        if pr.class_name in MAP:
            id_to_node[pr.object_id] = ""
    for pr in prots:
        params = _Tracked({k: _val(v, user_inputs) for k, v in pr.params.items()})
        if pr.class_name not in MAP:
            reason = NOT_MAPPED.get(pr.class_name, "no tomoforge step corresponds to this Scipion protocol")
            unmapped.append(Unmapped(source_class=pr.class_name, source_id=pr.object_id, label=pr.label,
                                     reason=reason))
            continue
        step, fn = MAP[pr.class_name]
        try:
            out = fn(params)
        except (TypeError, ValueError, IndexError) as err:
            unmapped.append(Unmapped(source_class=pr.class_name, source_id=pr.object_id, label=pr.label,
                                     reason=f"parameters could not be translated ({err})"))
            id_to_node.pop(pr.object_id, None)
            continue
        step = str(out.pop("_step", step))
        keep_none = set(out.pop("_keep_none", ()))
        if out.get("_note"):
            notes.append(f"{pr.class_name} ({pr.object_id}) -> {step}: {out['_note']}")
        out.pop("_note", None)
        out = {k: v for k, v in out.items() if v is not None or k in keep_none}
        for k in _invalid_params(step, out):
            notes.append(f"{pr.class_name} ({pr.object_id}) -> {step}: '{k}' = {out.pop(k)!r} is not valid "
                         "for the step; its default is used")
        nodes.append(MappedNode(id=f"{step}-{pr.object_id}".lower(), step=step, params=out,
                                source_class=pr.class_name, source_id=pr.object_id))
        id_to_node[pr.object_id] = nodes[-1].id
        nodes[-1].dropped_params = [k for k in params if k not in params.read]   # refined below
    alias = {pr.object_id: str(pr.params.get(PASS_THROUGH[pr.class_name], "")).split(".")[0]
             for pr in prots if pr.class_name in PASS_THROUGH}

    def resolve(src: str) -> str:
        seen = set()
        while src in alias and src not in seen:
            seen.add(src)
            src = alias[src]
        return id_to_node.get(src) or ""

    by_id = {n.source_id: n for n in nodes}
    for pr in prots:
        node = by_id.get(pr.object_id)
        if node is None:
            continue
        used = set()
        for k, v in pr.params.items():
            if isinstance(v, str) and _POINTER.match(v):
                src = _POINTER.match(v).group(1)
                used.add(k)
                if resolve(src):
                    node.inputs[k] = resolve(src)
                else:
                    notes.append(f"{pr.class_name} ({pr.object_id}): input '{k}' comes from protocol {src}, "
                                 "which was not mapped")
        node.dropped_params = sorted(k for k in node.dropped_params if not k.startswith("_") and k not in used
                                     and k not in _IGNORED)
    return WorkflowImport(description=description, nodes=nodes, unmapped=unmapped, user_inputs=user_inputs,
                          notes=notes)
