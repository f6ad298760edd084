"""The table of steps. The CLI and workflows look steps up here by their user-facing name."""

from __future__ import annotations

from tomoforge.steps.align_auto import Align
from tomoforge.steps.align_coarse import AlignCoarse
from tomoforge.steps.align_patches import AlignPatches
from tomoforge.steps.assign_alignment import AssignAlignment
from tomoforge.steps.base import Step
from tomoforge.steps.bin import Bin
from tomoforge.steps.ctf_correct import CtfCorrect
from tomoforge.steps.ctf_estimate import CtfEstimateStep
from tomoforge.steps.ctf_exclude import CtfExclude
from tomoforge.steps.dose_filter import DoseFilter
from tomoforge.steps.erase_fiducials import EraseFiducials
from tomoforge.steps.exclude_views import ExcludeViews
from tomoforge.steps.fiducial_align import FiducialAlign
from tomoforge.steps.fiducial_model import FiducialModel
from tomoforge.steps.import_external import EXTERNAL_IMPORT_STEPS
from tomoforge.steps.import_steps import Import, ImportMovies, ImportTiltSeries
from tomoforge.steps.motion_correct import MotionCorrect
from tomoforge.steps.reconstruct import Reconstruct
from tomoforge.steps.tilt_axis_refine import TiltAxisRefine
from tomoforge.steps.tomogram_postprocess import TomogramPostprocess
from tomoforge.steps.xray_erase import XrayErase

_ALL: list[type[Step]] = [
    Import, ImportMovies, ImportTiltSeries, *EXTERNAL_IMPORT_STEPS,
    MotionCorrect, XrayErase, ExcludeViews, DoseFilter, Bin, AssignAlignment,
    CtfEstimateStep, CtfExclude, CtfCorrect,
    AlignCoarse, TiltAxisRefine, FiducialModel, FiducialAlign, AlignPatches, Align,
    Reconstruct, EraseFiducials, TomogramPostprocess,
]

STEPS: dict[str, type[Step]] = {cls.name: cls for cls in _ALL}
